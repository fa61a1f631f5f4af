"""``swarm report RUN``: a run's curves as one figure (PNG or SVG) to share.

The same four panels as the console's curves screen (``console.screens.plots``), drawn with
matplotlib (imported here only): training loss per step, dev and test accuracy per round with
their 95% intervals and the base model's score, the judge and the debate per round, and the skills'
pass rates per round as a heat map.
"""

from __future__ import annotations

from pathlib import Path

from engine.report import Curves


def draw(c: Curves, out: Path) -> Path:
    """Write the figure for ``c`` to ``out`` (its suffix picks the format: .png or .svg)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 9), constrained_layout=True)
    fig.suptitle(f"swarm run {c.run_id}")
    (loss, acc), (deb, heat) = axes
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    x0 = 0
    for i, (rnd, losses) in enumerate(c.loss):
        loss.plot(range(x0 + 1, x0 + len(losses) + 1), losses, color=colors[i % len(colors)], label=f"round {rnd}")
        x0 += len(losses)
    loss.set(title="training loss per step", xlabel="step", ylabel="loss")

    k = 0
    for pool, series, base in (("dev", c.dev, c.dev_base), ("test", c.test, c.test_base)):
        for name, pts in series.items():
            col = colors[k % len(colors)]
            k += 1
            xs = [p[0] for p in pts]
            ys = [100 * p[1] for p in pts]
            err = [[100 * (p[1] - p[2]) for p in pts], [100 * (p[3] - p[1]) for p in pts]]
            acc.errorbar(xs, ys, yerr=err, color=col, marker="o" if pool == "dev" else "s", capsize=3,
                         linestyle="-" if pool == "dev" else "--", label=f"{name} ({'new adapter' if pool == 'dev' else 'scored'})")
            if name in base:
                acc.axhline(100 * base[name][0], color=col, linestyle=":", linewidth=1, label=f"{name} base model")
    acc.set(title="accuracy per round (95% intervals)", xlabel="round", ylabel="%", ylim=(0, 100))

    for i, label in enumerate(("judge agrees with verifier", "judge balanced accuracy", "debate gain")):
        pts = [(r[0], 100 * v) for r in c.debate if (v := r[i + 1]) is not None]
        if pts:
            deb.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=colors[i], label=label)
    if c.debate:
        deb.axhline(50, color="gray", linestyle=":", linewidth=1)
        deb.axhline(0, color="gray", linewidth=1)
    deb.set(title="judge and debate per round", xlabel="round", ylabel="%")

    if c.skills:
        def latest(rates: list[float | None]) -> float:
            return next((v for v in reversed(rates) if v is not None), 2.0)

        names = [k for k, _ in sorted(c.skills.items(), key=lambda kv: (latest(kv[1]), kv[0]))]
        grid = [[float("nan") if v is None else 100 * v for v in c.skills[n]] for n in names]
        im = heat.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
        heat.set_yticks(range(len(names)), names)
        heat.set_xticks(range(len(c.rounds)), [str(r) for r in c.rounds])
        for y, row in enumerate(grid):
            for x, v in enumerate(row):
                if v == v:
                    heat.text(x, y, f"{v:.0f}", ha="center", va="center", fontsize=8)
        fig.colorbar(im, ax=heat, label="% passed")
    heat.set(title=f"skills: {c.skills_source} pass rate per round", xlabel="round")

    from matplotlib.ticker import MaxNLocator

    for ax in (loss, acc, deb):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps and rounds are whole
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

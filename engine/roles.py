"""Which adapter each role runs under.

With ``train.adapters = "shared"`` one adapter (``role`` NULL in the store) serves every role;
with ``"per-role"`` the solver, critic, reviser and judge each have their own (``role`` names
it), and a role without a kept adapter of its own runs on the base model, as the proposer
always does, or with ``train.role_fallback = "solver"`` under the solver's adapter in use.
Either way the adapter a role runs under is the latest promoted one of the run that serves it,
so the same query answers for both modes and for runs from before roles.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from engine.recipes import Recipe
from engine.runtime import Runtime
from engine.store import Store

#: The roles that can have an adapter of their own (train.roles names the same four).
ROLES = ("solver", "critic", "reviser", "judge")

#: (id, path, sha256) of an adapter; all None: the base model.
Adapter = tuple[int | None, str | None, str | None]
BASE: Adapter = (None, None, None)


def in_use(store: Store, run_id: int, role: str = "solver", fallback: bool = False) -> Adapter:
    """The adapter ``role`` runs under now: the run's latest promoted adapter that is ``role``'s
    own or shared by every role; with ``fallback`` (train.role_fallback = "solver"), for a role
    without one, the solver's; the base model when there is none."""
    row = store.execute("select id, path, sha256 from adapters where run_id = ? and promoted "
                        "and (role is null or role = ?) order by id desc limit 1", [run_id, role])
    if not row and fallback and role in ROLES and role != "solver":  # the proposer stays on the base model
        return in_use(store, run_id, "solver")
    return (int(row[0][0]), str(row[0][1]), str(row[0][2])) if row else BASE


def falls_back(recipe: Recipe) -> bool:
    """Whether a role without an adapter of its own runs under the solver's (per-role adapters
    with train.role_fallback = "solver")."""
    return recipe.train.adapters == "per-role" and recipe.train.role_fallback == "solver"


def roles_in_use(store: Store, run_id: int, fallback: bool = False) -> dict[str, Adapter]:
    """Every role's adapter now (``fallback``: see ``in_use``)."""
    return {role: in_use(store, run_id, role, fallback) for role in ROLES}


def server(rt: Runtime, adapters: Mapping[str, Adapter]) -> Callable[[str], None]:
    """A function that makes ``rt`` serve ``role``'s adapter from ``adapters`` before that role's
    requests (a role not named runs on the base model); it swaps only when the adapter differs."""
    def serve(role: str) -> None:
        _id, path, sha = adapters.get(role, BASE)
        if not rt.serves(path):
            rt.set_adapter(path, sha256=sha).result()
    return serve


def adapters_key(adapters: Mapping[str, Adapter] | None) -> str | None:
    """How a debate score records the adapters it ran under: ``{"role": id}`` as JSON, sorted;
    None when one adapter served every role (then the score's ``adapter_id`` says which).

    >>> adapters_key({"solver": (3, "a", "x"), "judge": (None, None, None)})
    '{"judge": null, "solver": 3}'
    >>> adapters_key({"solver": (3, "a", "x"), "judge": (3, "a", "x")}) is None
    True
    """
    if not adapters or len({a[0] for a in adapters.values()}) <= 1:
        return None
    return json.dumps({role: a[0] for role, a in sorted(adapters.items())})

"""General prompts whose base-model answers are mixed into training against forgetting.

An adapter trained only on arithmetic answered "101 567" to "Explain what a linked list is"
(FACTS.md). At round 0 the base model answers these prompts and its answers are stored as
``replay`` examples; each training set mixes a share of them back in (``train.replay_fraction``).
With train.replay_facts, short questions of general knowledge (``FACT_REPLAY``) join them. None of
them is one of the general facts the gate and the benchmarks check (``engine.tasks.facts``):
two were ("Who wrote Romeo and Juliet?", "What language is spoken in Brazil?", both in the gate's
half), so the gate's facts check read two questions the adapter had been trained on.
"""

REPLAY_PROMPTS = [
    "Explain what a linked list is.",
    "Write a short poem about the sea.",
    "What is the capital of France?",
    "Give three tips for staying focused while studying.",
    "What does a compiler do?",
    "Describe the water cycle in two sentences.",
    "Name two instruments in an orchestra.",
    "Suggest a name for a friendly robot.",
    "What is photosynthesis?",
    "How do I boil an egg?",
    "Summarize the plot of Cinderella in one sentence.",
    "What is the difference between weather and climate?",
    "Write a haiku about autumn.",
    "Why is the sky blue?",
    "What is a prime number?",
    "List three uses of a paperclip.",
    "Explain recursion to a child.",
    "What is the difference between a noun and a verb?",
    "Give an example of a renewable energy source.",
    "What is the purpose of a README file?",
    "Translate 'good morning' into Spanish.",
    "What is the largest planet in the solar system?",
    "Describe a cat in three words.",
    "How many days are in a leap year?",
]

#: Short questions of general knowledge, asked as the gate's facts are asked (train.replay_facts):
#: their base-model answers rehearse answering such a question in a word or two. None is one of
#: the facts the gate and the benchmarks check (``engine.tasks.facts``), a control prompt, or has
#: the answer of one (the answer each was written for is kept beside it, for that check).
FACT_REPLAY = [
    ("What is the capital of Italy?", "rome"),
    ("What is the capital of Spain?", "madrid"),
    ("What is the capital of Kenya?", "nairobi"),
    ("What is the capital of Argentina?", "buenos aires"),
    ("What is the capital of Sweden?", "stockholm"),
    ("What is the capital of India?", "new delhi"),
    ("What language is spoken in Italy?", "italian"),
    ("What language is spoken in France?", "french"),
    ("What is the main language spoken in Japan?", "japanese"),
    ("Who wrote Pride and Prejudice?", "jane austen"),
    ("Who painted The Starry Night?", "van gogh"),
    ("Who wrote The Odyssey?", "homer"),
    ("What is the hardest natural substance?", "diamond"),
    ("How many legs does a spider have?", "eight"),
    ("How many sides does a triangle have?", "three"),
    ("What is the chemical symbol for iron?", "fe"),
    ("What planet is known as the Red Planet?", "mars"),
    ("What is the largest continent?", "asia"),
    ("What is the currency of the United Kingdom?", "pound"),
    ("What is the longest river in South America?", "amazon"),
    ("What is the opposite of early?", "late"),
    ("What is the opposite of light?", "dark"),
    ("What colour do you get by mixing blue and yellow?", "green"),
    ("How many hours are in a day?", "24"),
]

#: General prompts never trained on (disjoint from REPLAY_PROMPTS): how far an adapter's
#: answers drift from the base model's measures what self-training costs outside its domain.
CONTROL_PROMPTS = [
    "What is an atom?",
    "Write two lines about a rainy morning.",
    "Name three animals that live in the ocean.",
    "What is the boiling point of water in Celsius?",
    "Explain what a database index is.",
    "Give one tip for writing clear emails.",
    "What is the tallest mountain on Earth?",
    "Describe a sunset in one sentence.",
    "What does a web browser do?",
    "Who painted the Mona Lisa?",
    "What is gravity?",
    "Suggest a healthy breakfast.",
    "Why do leaves change colour in autumn?",
    "What is the opposite of 'ancient'?",
    "How does a thermometer work?",
    "Name a famous composer.",
]

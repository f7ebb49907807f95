"""The LLM advisor: ask an OpenAI-compatible model for a second opinion on a workload, safely.

``summary`` builds what the model is told, ``answer`` reads what it says (hostile or not),
``client`` talks to the endpoint, ``advisor`` runs the periodic questions and keeps each exchange.
The guard rails that decide what of an answer may be applied are pure maths, in
``hub/policy/advice.py``, so they are property-tested without a model. docs/advisor.md.
"""

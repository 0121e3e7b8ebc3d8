"""AI triage: a provider protocol, Mistral and offline providers, and the prompt."""

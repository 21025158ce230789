"""The embedded default: the whole job on a local sandbox and simulated terminals (``hedge-agent demo``)."""

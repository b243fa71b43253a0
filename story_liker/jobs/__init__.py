"""One module per pass. Each job takes its dependencies (Deps) and returns a Report; cli.py does the rest."""

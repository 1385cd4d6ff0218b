"""API keys live here (see the API issue); the app exists so the layout is stable."""

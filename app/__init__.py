"""convscope's web app: FastAPI routes and pages over the NumPy engine."""

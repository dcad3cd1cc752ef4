"""FastAPI service: risk lookups for platform services, review queue for analysts."""

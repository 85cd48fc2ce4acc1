"""The HTTP API: one module per group of routes, the layer over every domain package.

Controllers live here, not beside their domains, because a route often composes several of them
(``POST /extract`` runs the extractor or submits a job): kept apart, the domain packages import
each other without cycles and the API imports them all (``tests/unit/test_import_graph.py``).
"""

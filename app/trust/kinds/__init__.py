"""Reading and printing each kind of value (see ``app.trust.normalize``, the entry point): one module per
family of kinds."""

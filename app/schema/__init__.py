"""JSON Schema, the bottom layer: one walk over a schema (:mod:`~app.schema.walk`), one ``$ref``
resolution (:mod:`~app.schema.tree`), the bounded-time validator (:mod:`~app.schema.patterns`),
the grammar subset (:mod:`~app.schema.grammar`), the decoding schema and the prompt skeleton, the
declared checks' language (:mod:`~app.schema.checks`), ``x-review`` (:mod:`~app.schema.review`)
and a :class:`~app.schema.compiled.CompiledSchema` holding all of it once per schema version.

It imports nothing from other ``app`` packages but ``app.lib``'s leaf modules (JSON Pointer,
canonical JSON), so every other package may import it."""

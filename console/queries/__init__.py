"""The console's data: one module per page, plain functions that take the engine and a
*required* workspace name, so no query can forget whose rows it reads."""

"""Built-in extensions, registered through the `legion.extensions` entry-point group."""

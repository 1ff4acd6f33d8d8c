"""The built-in `core` extension (spec section 9): every install has `core.util`."""

from legion.extensions.core.runners import util
from legion.sdk import Extension

extension = Extension("core", runners=[util], description="Built-in utilities: echo, noop, fail, log, sleep, set")

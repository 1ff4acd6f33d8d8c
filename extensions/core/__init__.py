"""The built-in `core` extension (spec section 9): every install has `core.util`."""

from legion.engine.sdk import Extension
from legion.extensions.core.runners import util

extension = Extension("core", runners=[util], description="Built-in utilities: echo, noop, fail, log, sleep, set")

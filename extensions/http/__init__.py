"""The built-in `http` extension: `http.request.get/post/put/patch/delete/head`."""

from legion.extensions.http.runners import request
from legion.sdk import Extension

extension = Extension("http", runners=[request], description="HTTP requests: status, headers, text and parsed JSON")

# Runs one test function of a MicroPython test file: _mptest_runner.py FILE FUNCTION
# Prints "@@mptest PASS" or "@@mptest SKIP reason"; an exception exits non-zero
# with its traceback on stderr.
import sys

path, name = sys.argv[1], sys.argv[2]
slash = path.rfind("/")
sys.path.insert(0, path[:slash] if slash >= 0 else ".")
module = __import__(path[slash + 1 : -3])
try:
    getattr(module, name)()
except Exception as e:
    if type(e).__name__ == "SkipTest":
        print("@@mptest SKIP", e)
        sys.exit(0)
    raise
print("@@mptest PASS")

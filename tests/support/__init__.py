"""The helpers of every test tier, imported by name (``from support.healthcare import …``).

``tests/`` is on ``sys.path`` through pytest's ``pythonpath`` option (pyproject.toml), so this
package is found wherever a test lives, not because pytest happens to prepend a test's own
directory. Modules shared by several tiers sit here; ``e2e/`` holds the end-to-end tier's.
"""

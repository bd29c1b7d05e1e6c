"""The `sumonce` command line: a thin dispatcher over proto/, spec/ and actors/."""

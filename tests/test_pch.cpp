// The translation unit that owns the tests' precompiled header (tests/CMakeLists.txt:
// bertfit_test_pch); it has no code of its own.

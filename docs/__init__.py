"""The documentation folder, a package only so that its examples import from the repository root
(``docs.examples.outside_factory:make``)."""

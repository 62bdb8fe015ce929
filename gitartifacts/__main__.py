"""`python -m gitartifacts`: the same as the `gart` command."""

from gitartifacts.cli import main

if __name__ == "__main__":
    main()

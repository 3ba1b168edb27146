"""Side-by-side comparisons of the zoo: theorems checked on random inputs, and the CLI."""

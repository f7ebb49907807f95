"""Request traces shipped as package data (CSV files; licence and citation in README.md)."""

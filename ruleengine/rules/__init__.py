"""The rule language: grammar-driven parsing into typed, validated Rule objects."""

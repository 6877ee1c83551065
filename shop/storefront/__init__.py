"""What customers browse: home, categories, products, search."""

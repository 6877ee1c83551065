"""The catalog: categories and products, their prices and what a buyer must fill in."""

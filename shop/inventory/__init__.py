"""Card-key inventory: import, reserve, sell, release and void keys, keeping stock counts."""

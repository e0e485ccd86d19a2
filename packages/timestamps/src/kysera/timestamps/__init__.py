"""kysera.timestamps: maintain created_at / updated_at on every write."""

__all__: list[str] = []

"""The catalogue inventory owns: SKUs, names, prices and the stock seeded at first start."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price_cents: int
    stock: int | None = None  # None: the settings' seed_stock


CATALOGUE = (
    Product("SKU-001", "Chaos monkey plush", 1999),
    Product("SKU-002", "Circuit breaker keyring", 499),
    Product("SKU-003", "Retry budget notebook", 899),
    Product("SKU-004", "Bulkhead water bottle", 2499),
    Product("SKU-005", "Idempotency mug", 1299),
    Product("SKU-006", "Outbox tote bag", 1599),
    Product("SKU-007", "Load shedder hoodie", 5499),
    Product("SKU-008", "Game day sticker pack", 299),
    Product("SKU-009", "Runbook binder", 1099),
    Product("SKU-010", "Pager (decommissioned)", 9999),
    Product("SKU-LIMITED", "Signed postmortem, limited edition", 4999, stock=5),
)


async def seed(conn, seed_stock: int) -> None:
    """Insert missing products; existing stock is never touched (restarts keep it)."""
    await conn.executemany(
        """INSERT INTO products (sku, name, unit_price_cents, initial, available)
           VALUES ($1, $2, $3, $4, $4) ON CONFLICT (sku) DO NOTHING""",
        [(p.sku, p.name, p.unit_price_cents, seed_stock if p.stock is None else p.stock) for p in CATALOGUE],
    )

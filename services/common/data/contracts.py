"""The shapes that cross service boundaries, validated on both sides of each hop."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(pattern=SKU_PATTERN, description="catalogue SKU, e.g. SKU-001")
    quantity: StrictInt = Field(ge=1, le=1000, description="units wanted, 1 to 1000")


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@:-]+$")
    items: list[OrderItem] = Field(min_length=1, max_length=20)


class PricedItem(BaseModel):
    sku: str
    quantity: int
    unit_price_cents: int


class Order(BaseModel):
    """What POST /orders and GET /orders/{id} answer."""

    order_id: str
    status: str
    items: list[PricedItem]
    total_cents: int | None
    correlation_id: str | None
    created_at: str


IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"

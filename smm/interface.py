"""The one interface of SMM panel adapters: what the SMM services ask of any panel.

`smm.panel.PanelV2` implements it for every panel speaking the "panel API v2" (Just Another Panel,
SMM Kings, Secsers and their clones); a panel with another protocol would be one more class here.
Ids are the panel's own, as strings; failures are `integrations.errors.ProviderError`s.
"""

from integrations.adapters import Adapter


class SmmPanel(Adapter):
    """An SMM panel adapter. Every operation below must be implemented."""

    def services(self):
        """The panel's catalogue: a list of `smm.panel.PanelService`."""
        raise NotImplementedError

    def add(self, service_type="Default", **values):
        """Place one order (never retried: panels cannot deduplicate); return the panel's order id."""
        raise NotImplementedError

    def status(self, order_id):
        """The `PanelOrderStatus` of one order."""
        raise NotImplementedError

    def statuses(self, order_ids):
        """{order id: PanelOrderStatus} for any number of orders (batched by the adapter)."""
        raise NotImplementedError

    def fetch_statuses(self, order_ids):
        """One status call for up to one batch of ids: the panel's answer, checked for shape only."""
        raise NotImplementedError

    def read_statuses(self, order_ids, payload):
        """{order id: PanelOrderStatus} for the ids asked about, read from `fetch_statuses`' answer."""
        raise NotImplementedError

    def refill(self, order_id):
        """Ask for a refill of one order; return the panel's refill id."""
        raise NotImplementedError

    def refills(self, order_ids):
        """Ask for refills of many orders: {order id: refill id or a ProviderError}."""
        raise NotImplementedError

    def refill_status(self, refill_id):
        """Our `SMMRefill` status value of one refill."""
        raise NotImplementedError

    def refill_statuses(self, refill_ids):
        """{refill id: our refill status value or a ProviderError}."""
        raise NotImplementedError

    def cancel(self, order_ids):
        """Ask to cancel orders: {order id: True or a ProviderError}."""
        raise NotImplementedError

    def balance(self):
        """The account's balance: (Decimal amount, currency code)."""
        raise NotImplementedError

"""One adapter class per way to pay, each implementing `payments.interface.PaymentGateway`."""

"""The shop's adapters: the database, the session store, the payment and recommendation clients."""

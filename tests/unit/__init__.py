"""The fast tier: the sans-IO core (encode, decode, the flows) with canned replies, no Redis."""

"""The rider's web page: a phone-sized view of the dynamic QR, the balance and recent activity."""

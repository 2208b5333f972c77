"""The monthly statement: seat rent or per-call fees, the SLA deduction, VAT and its deadlines."""

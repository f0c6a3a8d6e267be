"""Delivery into warehouses with dlt: `rows` turns stored records and change sets into
rows, `loader` loads them into one destination and asks it which version it holds.

Only the delivery worker imports this package (dlt is heavy), from `tasks.deliver`.
"""

"""TCG PC Client event logs (crypto-agile and SHA-1): records, event types, decoded event
data, replay to PCR values, and measured PCR values to compare with."""

"""The edge between topo and a live broker: the Management API client, the reader and the writer."""

"""Pure PCI code: addresses, config-space decoding, dumps and names. Nothing here touches the host."""

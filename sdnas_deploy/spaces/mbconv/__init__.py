"""Layer-wise MBConv spaces (FBNet, ProxylessNAS): blocks, layouts, networks, supernet and table keys."""

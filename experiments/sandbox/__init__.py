"""The sandbox: the whole system on one machine, for the demo and end-to-end tests.

It stands in for the cluster parts the operator does not own (a control plane, Seldon's
controller and Istio, Prometheus, load). The operator never imports it.
"""

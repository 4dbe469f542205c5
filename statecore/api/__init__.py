"""statecore over HTTP: Cinder's ``os-services`` in Cinder's shapes (``pip install 'statecore[api]'``).

``create_app(EngineSource(engine), policy)`` in an embedding service; ``statecore serve`` runs
``create_app(StoreSource(store), StaticTokenPolicy(token))`` standalone. See docs/api.md.
"""

from statecore.api.app import create_app
from statecore.api.faults import ApiFault, fault_body, fault_response, install_fault_handlers
from statecore.api.microversion import MAX_VERSION, MIN_VERSION, Version
from statecore.api.policy import Policy, StaticTokenPolicy
from statecore.api.sources import EngineSource, Source, StoreSource

__all__ = [
    "MAX_VERSION",
    "MIN_VERSION",
    "ApiFault",
    "EngineSource",
    "Policy",
    "Source",
    "StaticTokenPolicy",
    "StoreSource",
    "Version",
    "create_app",
    "fault_body",
    "fault_response",
    "install_fault_handlers",
]

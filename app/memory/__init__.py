"""Sender memory: an approved document teaches where its sender prints each field (label, place,
format); the next document of that sender is read with it. Identities in ``identity``, learning
and recalling in ``profile``, the table in ``store``, the lookup and learning from a review in
``service``. Memories belong to a team or a key (``Principal.memory_owner``) and are never shared."""

from app.memory.identity import identify
from app.memory.profile import Profile, learn, recall
from app.memory.service import MemoryLookup, learn_from_approved, memory_lookup, memory_owner_of

__all__ = [
    "MemoryLookup",
    "Profile",
    "identify",
    "learn",
    "learn_from_approved",
    "memory_lookup",
    "memory_owner_of",
    "recall",
]

"""kysera.rls: tenancy and row-level security for Kysera repositories, failing closed."""

from kysera.rls.context import RLSContext as RLSContext
from kysera.rls.context import current_context as current_context
from kysera.rls.context import current_user_id as current_user_id
from kysera.rls.context import rls_context as rls_context
from kysera.rls.context import system_context as system_context
from kysera.rls.errors import RLSContextError as RLSContextError
from kysera.rls.errors import RLSError as RLSError
from kysera.rls.errors import RLSPolicyError as RLSPolicyError
from kysera.rls.errors import RLSScopeError as RLSScopeError
from kysera.rls.mixin import RLSMixin as RLSMixin
from kysera.rls.plugin import RLSPlugin as RLSPlugin
from kysera.rls.policy import AllowPolicy as AllowPolicy
from kysera.rls.policy import CheckPolicy as CheckPolicy
from kysera.rls.policy import FilterPolicy as FilterPolicy
from kysera.rls.policy import Policy as Policy
from kysera.rls.policy import PublicPolicy as PublicPolicy
from kysera.rls.policy import RowPredicate as RowPredicate
from kysera.rls.policy import TenantPolicy as TenantPolicy
from kysera.rls.policy import ValuesPredicate as ValuesPredicate
from kysera.rls.policy import policy as policy
from kysera.rls.postgres import POLICY_NAME as POLICY_NAME
from kysera.rls.postgres import postgres_policies as postgres_policies

__all__ = [  # noqa: RUF022 (plain sorted() order, which test_exports checks)
    "AllowPolicy",
    "CheckPolicy",
    "FilterPolicy",
    "POLICY_NAME",
    "Policy",
    "PublicPolicy",
    "RLSContext",
    "RLSContextError",
    "RLSError",
    "RLSMixin",
    "RLSPlugin",
    "RLSPolicyError",
    "RLSScopeError",
    "RowPredicate",
    "TenantPolicy",
    "ValuesPredicate",
    "current_context",
    "current_user_id",
    "policy",
    "postgres_policies",
    "rls_context",
    "system_context",
]

"""Allowed transitions, a compare-and-set move, and one history row per move.

A domain model declares its table once::

    machine = StateMachine({"created": {"pending", "failed"}, "pending": {"done"}, "done": set(), ...})

and changes its state only through it. `move` is one conditional UPDATE (`WHERE pk = … AND status =
<the state we read>`): of two workers that read the same state, exactly one moves the row; the other
updates nothing and learns it lost. Only a move that happened writes its history row
(`integrations.models.StateTransition`), in the same transaction. A final state has no exits, so a
finished row never reopens, whatever answer arrives late.

Bulk writers (a poll, a sweep) use `sources_of(new)` in their WHERE clause and
`StateTransition.objects.record_many` for the rows that moved, or `move_many` for one target state.
"""

from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone

__all__ = ["StateMachine"]


def _key(state):
    return None if state is None else str(state)


class StateMachine:
    def __init__(self, transitions, field="status", *, history=True):
        self.transitions = {
            _key(old): frozenset(_key(new) for new in targets) for old, targets in transitions.items()
        }
        unknown = {new for targets in self.transitions.values() for new in targets} - set(self.transitions)
        if unknown:
            raise ValueError(f"states without a row in the table: {sorted(unknown)}")
        self.field = field
        self.history = history
        self._sources = {}
        for old, targets in self.transitions.items():
            for new in targets:
                self._sources.setdefault(new, set()).add(old)

    def __repr__(self):
        return f"<StateMachine {self.field}: {len(self.transitions)} states>"

    # --- the table ------------------------------------------------------------------------------
    @property
    def states(self):
        return frozenset(self.transitions)

    @property
    def final(self):
        """States with no exit."""
        return frozenset(state for state, targets in self.transitions.items() if not targets)

    def is_final(self, state):
        return not self.transitions.get(_key(state))

    def can_move(self, old, new):
        return _key(new) in self.transitions.get(_key(old), ())

    def targets_of(self, old):
        return self.transitions.get(_key(old), frozenset())

    def sources_of(self, new):
        """The states that may move to `new` (for a bulk write's WHERE clause)."""
        return frozenset(self._sources.get(_key(new), ()))

    # --- moves ----------------------------------------------------------------------------------
    def _with_auto_now(self, model, fields):
        now = None
        for f in model._meta.concrete_fields:
            if getattr(f, "auto_now", False) and f.name not in fields:
                now = now or timezone.now()
                fields[f.name] = now
        return fields

    def move(self, instance, new, *, reason="", actor=None, only_if=None, **fields):
        """Move `instance` to `new` if the table allows it from the state we hold and the row is still
        in that state (compare-and-set). Returns whether it moved; only then are the history row
        written and `instance` updated (its state and `fields`).

        `only_if` (a `Q` or a dict of lookups) adds conditions to the UPDATE's WHERE clause: a claim
        that must also find the attempt counter it read, a due time that has come."""
        old = getattr(instance, self.field)
        if not self.can_move(old, new):
            return False
        model = type(instance)
        fields = self._with_auto_now(model, dict(fields))
        using = router.db_for_write(model, instance=instance)
        with transaction.atomic(using=using):
            rows = model._base_manager.using(using).filter(pk=instance.pk, **{self.field: old})
            if only_if is not None:
                rows = rows.filter(only_if) if isinstance(only_if, Q) else rows.filter(**only_if)
            moved = rows.update(**{self.field: new}, **fields)
            if moved != 1:
                return False
            if self.history:
                self.record(instance, old, new, reason=reason, actor=actor, using=using)
        setattr(instance, self.field, new)
        computed = []
        for name, value in fields.items():
            if hasattr(value, "resolve_expression"):  # F("attempts") + 1: the database knows the value
                computed.append(name)
            else:
                setattr(instance, name, value)
        if computed:
            instance.refresh_from_db(using=using, fields=computed)
        return True

    def move_many(self, queryset, new, *, reason="", actor=None, **fields):
        """Move every row of `queryset` whose state may move to `new`; rows in other states are left
        alone. Returns the primary keys of the rows that moved (each gets its history row)."""
        model = queryset.model
        sources = self.sources_of(new)
        if not sources:
            return []
        fields = self._with_auto_now(model, dict(fields))
        using = queryset.db
        with transaction.atomic(using=using):
            # Locked on PostgreSQL (a concurrent mover waits, then sees the new state); on SQLite the
            # transaction itself keeps writers out between this read and the UPDATE.
            rows = list(
                queryset.filter(**{f"{self.field}__in": sources})
                .select_for_update()
                .order_by("pk")
                .values_list("pk", self.field)
            )
            if not rows:
                return []
            pks = [pk for pk, _old in rows]
            model._base_manager.using(using).filter(pk__in=pks, **{f"{self.field}__in": sources}).update(
                **{self.field: new}, **fields
            )
            if self.history:
                self.record_many(model, [(pk, old, new) for pk, old in rows], reason=reason, actor=actor,
                                 using=using)
        return pks

    # --- history --------------------------------------------------------------------------------
    def record(self, instance, old, new, *, reason="", actor=None, using=None):
        """The history row of one move that already happened."""
        return self.record_many(type(instance), [(instance.pk, old, new)], reason=reason, actor=actor,
                                using=using)

    def record_many(self, model, moves, *, reason="", actor=None, using=None):
        """History rows for moves that already happened, in one INSERT: `moves` holds
        `(pk, old, new)` or `(pk, old, new, reason)` tuples. Returns how many."""
        from .models import StateTransition

        manager = StateTransition.objects.db_manager(using) if using else StateTransition.objects
        return manager.record_many(model, moves, field=self.field, reason=reason, actor=actor)

    def history_of(self, instance):
        from .models import StateTransition

        return StateTransition.objects.of(instance).filter(field=self.field)

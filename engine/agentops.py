"""What `legion agent` (and any interface) does with agents: make them, list them, show how
one is (its mode, recent memories, trust, consent tiers, its conversation), send it a message
(a `human_direct` signal that wakes it), run a tick, erase it.

An agent is a record (name, partner, settings) plus the state its extensions keep (sealed
with its own key, see legion.engine.agentstate). Its cycle is the chain `agent_tick` and its
heartbeat the chain `agent_heartbeat` (chains/agents/), applied when the first agent is made.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion.dsl.errors import BadInput

if TYPE_CHECKING:
    from legion.engine.agentstate import AgentStates

AGENT_CHAINS = Path(__file__).resolve().parents[1] / "chains" / "agents"
TICK_CHAIN = "agent_tick"
MAX_WAKE_TICKS = 3  # ticks `send` runs at most for one message: dormant -> sentinel -> full_active answers


def check_agent_name(agent: str | None) -> str | None:
    """An agent's name as a run takes it; BadInput for one that cannot be."""
    if agent is not None and (not agent.strip() or len(agent) > 255 or agent != agent.strip() or "/" in agent):
        raise BadInput(f"agent {agent!r}: give an agent's name of 1 to 255 characters, without '/' or surrounding spaces",
                       details={"field": "agent"})
    return agent


class AgentOps:
    """Mixed into `Service` (which gives `store`, `registry`, `apply_chains`, `start_run`)."""

    store: Any
    registry: Any
    _agent_states: AgentStates | None = None

    def agent_states(self) -> AgentStates:
        if self._agent_states is None:
            from legion.engine.agentstate import AgentKeys, AgentStates
            from legion.engine.secrets import store_from_env

            self._agent_states = AgentStates(self.store, AgentKeys(functools.cache(store_from_env)))
        return self._agent_states

    def ensure_agent_chains(self) -> None:
        """Apply the shipped agent chains (the tick and the heartbeat) when they are not, or
        differ from what is applied."""
        self.apply_chains(paths=[str(AGENT_CHAINS)])  # type: ignore[attr-defined]

    def create_agent(self, name: str, partner: str | None = None, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        if check_agent_name(name) is None:
            raise BadInput("give the agent a name")
        self.ensure_agent_chains()
        return dict(self.store.create_agent(name, partner, settings))

    def list_agents(self) -> list[dict[str, Any]]:
        return list(self.store.list_agents())

    def agent(self, name: str) -> dict[str, Any]:
        """The agent's record; NotFound for none, BadInput for one that was erased."""
        found = dict(self.store.get_agent(name))
        if found.get("erased_at") is not None:
            raise BadInput(f"agent {name!r} was erased at {found['erased_at']:%Y-%m-%d %H:%M:%S} UTC: nothing of it is left",
                           details={"agent": name})
        return found

    def agent_call(self, name: str, function: str, args: dict[str, Any] | None = None) -> Any:
        """Call an extension function as agent `name` (its state, the wall clock)."""
        from legion.engine.sdk import call_as

        return call_as(self.registry.function(function), args, agent=name, clock=None, states=self.agent_states(),
                       registry=self.registry)

    def agent_status(self, name: str, *, memories: int = 5) -> dict[str, Any]:
        """How agent `name` is: {agent, mode (tick_status), memories (the strongest), trust (with
        its trust in the partner, `partner`), consent, conversation}."""
        record = self.agent(name)
        strongest = self.agent_call(name, "memory.traces.retrieve_by_type", {"type": "episodic", "limit": memories})
        partner = record.get("partner") or "partner"
        trust = dict(self.agent_call(name, "trust.trust.trust_status"),
                     partner=self.agent_call(name, "trust.trust.get_trust", {"agent_id": partner, "domain": "conversation"}))
        return {"agent": record, "mode": self.agent_call(name, "tick.orchestrator.tick_status"),
                "memories": strongest.get("traces", []), "trust": trust,
                "consent": self.agent_call(name, "consent.consent.consent_status"),
                "conversation": self.agent_call(name, "tick.inbox.conversation", {"limit": 5})}

    def tick_agent(self, name: str, *, model: str | None = None, api_base: str | None = None,
                   timeout: float | None = 120.0) -> dict[str, Any]:
        """Run one tick of agent `name` (the chain `agent_tick`, for it) and wait for it: the run."""
        return self._tick(self.agent(name), model=model, api_base=api_base, timeout=timeout)

    def _tick(self, record: dict[str, Any], *, model: str | None, api_base: str | None, timeout: float | None) -> dict[str, Any]:
        if TICK_CHAIN not in self.applied_names():  # type: ignore[attr-defined]
            self.ensure_agent_chains()  # (made by `agent create`; applied again only when gone)
        payload: dict[str, Any] = {k: v for k, v in (("model", model), ("api_base", api_base), ("partner", record.get("partner")))
                                   if v}
        return dict(self.start_run(TICK_CHAIN, payload, wait=True, timeout=timeout, agent=record["name"]))  # type: ignore[attr-defined]

    def send_to_agent(self, name: str, text: str, *, model: str | None = None, api_base: str | None = None,
                      timeout: float | None = 120.0) -> dict[str, Any]:
        """Give agent `name` a message from its partner (a human_direct signal) and run its ticks
        until it answered (at most MAX_WAKE_TICKS: one mode step per tick): {message, ticks
        (each run's id, mode and whether it replied), reply (the answer, or null)}."""
        record = self.agent(name)
        if not text.strip():
            raise BadInput("the message is empty: give the text to send")
        received = self.agent_call(name, "tick.inbox.receive", {"value": text, "source_type": "human_direct"})
        ticks = []
        for _ in range(MAX_WAKE_TICKS):
            run = self._tick(record, model=model, api_base=api_base, timeout=timeout)
            output = run.get("output") or {}
            ticks.append({"run_id": run["id"], "status": run["status"], "mode": output.get("mode"), "replied": output.get("replied"),
                          "declined": output.get("declined")})
            if run["status"] != "succeeded" or output.get("replied") is not None or output.get("declined"):
                break
        talk = self.agent_call(name, "tick.inbox.conversation", {"limit": 20})
        answer = next((r for r in reversed(talk["replies"]) if received["id"] in r.get("in_reply_to", [])), None)
        return {"message": received, "ticks": ticks, "reply": answer}

    def erase_agent(self, name: str) -> dict[str, Any]:
        """Erase agent `name`: its key first (so no copy of its state can be read again), then
        its state, then the finished runs that were for it (their tasks hold what it was told
        and said); its record stays, marked erased. {agent, erased (documents), runs_deleted,
        erased_at}."""
        self.agent(name)
        erased, deleted = self.agent_states().erase_all(name)
        record = self.store.get_agent(name)
        return {"agent": name, "erased": erased, "runs_deleted": deleted, "erased_at": record.get("erased_at")}


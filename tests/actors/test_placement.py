"""placement.py's naming, without a cluster: every rank named with its node, every node with its
ranks, in proto.nodes' layout."""
from sumonce.actors.placement import Placement, RayNode, summary
from sumonce.proto import nodes
from sumonce.proto.config import ServerConfig


def two_nodes() -> Placement:
    layout = nodes.tp_group_nodes(ServerConfig(tp_size=8, nnodes=2))
    return Placement(layout, {0: RayNode("a" * 56, "10.0.0.1", {"CPU": 4}),
                              1: RayNode("b" * 56, "10.0.0.2", {"CPU": 4, "sumonce_node_1": 1})})


def test_ranks_are_named_with_their_nodes():
    p = two_nodes()
    assert p.spans == 2 and p.ranks_on(1) == [4, 5, 6, 7]
    assert p.where([5, 2, 6]) == ("(rank 2 on node 0: 10.0.0.1, ray node aaaaaaaa; "
                                  "rank 5, 6 on node 1: 10.0.0.2, ray node bbbbbbbb)")
    assert summary(p) == ("node 0 (10.0.0.1, ray node aaaaaaaa): rank 0, 1, 2, 3; "
                          "node 1 (10.0.0.2, ray node bbbbbbbb): rank 4, 5, 6, 7")


def test_a_simulated_node_is_known_by_its_resource():
    p = two_nodes()
    assert p.nodes[1].simulated_index() == 1 and p.nodes[0].simulated_index() is None


def test_a_node_not_yet_placed_is_named_by_its_index_alone():
    p = Placement((0, 0), {})
    assert p.where([1]) == "(rank 1 on node 0)" and p.node_text(0) == "node 0"

"""Plan -> `graphviz.Digraph`: boxes become nodes with HTML-like labels, clusters nest,
shortcut edges get their kind's style and an SVG class (`shortcut-proj`, ...) that tests
and style sheets can select on, and a legend explains the shortcut kinds drawn.

The `graphviz` package is imported here, inside `to_digraph`, and nowhere else at import
time; the package is the `draw` extra (`pip install rnetc[draw]`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resnet_dsl.backends.graphviz import labels, style
from resnet_dsl.backends.graphviz.errors import PackageMissing
from resnet_dsl.backends.graphviz.layout import Box, Cluster, Plan, plan
from resnet_dsl.ir.graph import Network

if TYPE_CHECKING:
    import graphviz

RANKDIRS = ("TB", "LR")


def to_digraph(net: Network, *, expand: bool = False, rankdir: str = "TB",
               shapes: bool = True) -> graphviz.Digraph:
    """A diagram of a checked network; `.source` is its DOT text.

    expand: every layer and addition (blocks as clusters) instead of one block per stage
    plus an `x(n-1)` block for the repeats; rankdir: "TB" (top to bottom) or "LR";
    shapes: tensor shapes on the edges where they change.

    >>> from resnet_dsl.compiler import compile_network
    >>> g = to_digraph(compile_network('specs/resnet101.rnet'))
    >>> 'x22' in g.source, 'shortcut-proj' in g.source
    (True, True)
    """
    try:
        import graphviz
    except ModuleNotFoundError:
        raise PackageMissing() from None
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    p = plan(net, expand=expand, shapes=shapes)
    g = graphviz.Digraph(name=net.name)
    g.attr("graph", rankdir=rankdir, label=_title(p), **style.GRAPH)
    g.attr("node", **style.NODE)
    if expand:
        g.attr("graph", **style.GRAPH_EXPANDED)
        g.attr("node", **style.NODE_EXPANDED)
    g.attr("edge", **style.EDGE)
    for kind, item in p.top:
        _emit_item(g, net, p, kind, item)
    # With `ordering=out` a node's out-edges are laid out left to right in the order
    # they are written. Written first, the invisible edge to a cluster's title puts the
    # title on the left; the plan's edges follow program order, so the residual branch
    # comes before its shortcut and the shortcuts all go to one side.
    entry = {e.dst: e.src for e in reversed(p.edges) if e.kind == "main"}
    for cluster in p.clusters.values():
        first = _first_box(p, cluster)
        if cluster.role not in ("block", "gate") and first in entry:
            g.edge(entry[first], _title_id(cluster), style="invis", weight="0")
    for edge in p.edges:
        attrs = style.edge_attrs(edge.kind)
        attrs["class"] = (edge.kind if edge.kind in ("main", "gate")
                          else f"shortcut shortcut-{edge.kind}")
        if edge.label:
            attrs["label"] = f" {edge.label} "
        g.edge(edge.src, edge.dst, **attrs)
    if p.shortcut_kinds:
        _legend(g, p.shortcut_kinds, rankdir)
    return g


def _emit_item(g, net: Network, p: Plan, kind: str, item: str) -> None:
    if kind == "box":
        box = p.boxes[item]
        attrs = style.node_attrs(box.role, box.shortcut)
        if box.role == "add" and len(box.members) > 1:
            attrs.update(style.ADD_WITH_POST)
        if box.role == "gate":  # a column of its own beside the path
            attrs["group"] = f"gate:{box.cluster}"
        elif box.role == "part":  # a split's parts side by side, the first on the spine
            attrs["group"] = "spine" if box.id.endswith(".0") else f"part:{box.id.rsplit('.', 1)[1]}"
        elif box.role != "shortcut":
            attrs["group"] = "spine"  # dot keeps edges inside a group straight
        cls = f"box-{box.role}" + (f" shortcut-{box.shortcut}" if box.shortcut else "")
        g.node(box.id, label=_box_label(net, box), tooltip=box.tooltip, **attrs,
               **{"class": cls})
        if box.beside:  # the gate's last box level with its `×`: the gate enters it from the side
            with g.subgraph() as row:
                row.attr(rank="same")
                row.node(box.beside)
                row.node(box.id)
        return
    cluster = p.clusters[item]
    with g.subgraph(name=f"cluster_{cluster.id}") as sub:
        fill, line, shape = style.CLUSTER[cluster.role]
        sub.attr(label="", style=shape, fillcolor=fill, color=line, margin="10")
        sub.attr(**{"class": f"cluster-{cluster.role}"})
        if cluster.role in ("block", "gate"):  # its name heads its first layer (layout.py)
            sub.attr(tooltip=cluster.title + (f": {cluster.subtitle}" if cluster.subtitle else ""))
        else:
            # The title is a node beside the cluster's first box rather than the cluster's
            # label: dot routes edges around nodes but straight through labels, and the
            # edge into a stage would cross its name.
            title = _title_id(cluster)
            sub.node(title, label=_cluster_label(cluster), shape="plaintext", style="",
                     fontsize="13", margin="0", **{"class": f"title-{cluster.role}"})
            with sub.subgraph() as row:
                row.attr(rank="same")
                row.node(title)
                row.node(_first_box(p, cluster))
        for child_kind, child in cluster.children:
            _emit_item(sub, net, p, child_kind, child)


def _title_id(cluster: Cluster) -> str:
    return f"{cluster.id}/title"


def _first_box(p: Plan, cluster: Cluster) -> str:
    kind, item = cluster.children[0]
    return item if kind == "box" else _first_box(p, p.clusters[item])


def _box_label(net: Network, box: Box) -> str:
    if box.role == "add":  # `+`, then what follows the addition (collapsed view)
        after = labels.step_lines(net, box.members[1:]) if len(box.members) > 1 else []
        return "<" + " ".join(["<b>+</b>", *map(labels.html, after)]) + ">"
    if box.role == "mul":  # the gate's multiplication: `×` in a circle
        return "<<b>×</b>>"
    if box.role == "cat":  # a split's parts concatenated
        return "<<b>cat</b>>"
    rows: list[str] = []
    if box.badge:
        rows.append(f'<font point-size="16"><b>{box.badge}</b></font>  <b>{labels.html(box.header or "")}</b>')
    elif box.header:
        rows.append(f"<b>{labels.html(box.header)}</b>")
    for line in labels.step_lines(net, box.members) if box.role not in ("input",) else ():
        rows.append(f'<font point-size="10">{labels.html(line)}</font>')
    return "<" + "<br/>".join(rows or [labels.html(box.id)]) + ">"


def _cluster_label(cluster: Cluster) -> str:
    text = f'<b>{labels.html(cluster.title)}</b><br align="left"/>'
    if cluster.subtitle:
        text += f'<font point-size="10">{labels.html(cluster.subtitle)}</font><br align="left"/>'
    return f"<{text}>"


def _title(p: Plan) -> str:
    return (f'<<b>{labels.html(p.title)}</b><br/>'
            f'<font point-size="11">{labels.html(p.subtitle)}</font>>')


def _legend(g, kinds: list[str], rankdir: str) -> None:
    """One row per shortcut kind drawn: its description, then a line in its style."""
    with g.subgraph(name="cluster_legend") as leg:
        _, line, shape = style.CLUSTER["legend"]
        leg.attr(label="<<b>shortcuts</b>>", style=shape, color=line, fontsize="12",
                 labeljust="l", margin="8")
        leg.attr(**{"class": "legend"})
        texts = []
        for kind in kinds:
            text, mark = f"legend/{kind}", f"legend/{kind}/mark"
            texts.append(text)
            leg.node(text, label=style.LEGEND[kind], shape="plaintext", style="",
                     fontsize="10", **{"class": f"legend-{kind}"})
            if kind == "identity":
                mark_attrs = style.node_attrs("add", None) | {"label": "+"}
            else:
                mark_attrs = style.node_attrs("shortcut", kind) | {"label": "", "width": "0.35",
                                                                   "height": "0.2"}
            leg.node(mark, **mark_attrs)
            leg.edge(text, mark, **style.edge_attrs(kind), **{"class": f"shortcut-{kind}"})
            if rankdir == "TB":  # the row reads left to right; rows follow one another down
                with leg.subgraph() as row:
                    row.attr(rank="same")
                    row.node(text)
                    row.node(mark)
        if rankdir == "TB":
            for upper, lower in zip(texts, texts[1:]):
                leg.edge(upper, lower, style="invis")
        else:  # LR: text -> mark already runs left to right; stack the rows in one rank
            with leg.subgraph() as column:
                column.attr(rank="same")
                for text in texts:
                    column.node(text)

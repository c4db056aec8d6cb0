"""Formatter properties over generated specs (hypothesis).

Specs are assembled from building blocks (networks with parameters, `require`, `let`,
`input`, stems, heads, `if`/`else if`/`else`, user blocks used by stages and called as
layers, network aliases, both call forms, sizes written several ways) and laid out at
random: spaces, tabs, `;`, blank lines, line breaks inside parentheses, full-line and
trailing comments. For each: the output is a fixed point, the AST, the comments and every
network's IR (or its error codes) are unchanged.
"""

from format_support import ast_without_spans, comment_texts, irs_without_spans
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resnet_dsl.tooling.format import format_source

COMMENTS = ("# note", "#", "#tight", '# braces { } ( ) and "quotes"', "# x = 1; conv 3x3 8")
POLICIES = ("proj", "proj_all", "avgproj", "B", "C", "D")


class _Spec:
    """Draws the pieces of one spec and its layout."""

    def __init__(self, draw):
        self.draw = draw
        self.counter = 0

    def pick(self, *options):
        return self.draw(st.sampled_from(options))

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    # -- layout ----------------------------------------------------------------------
    def gap(self) -> str:  # whitespace that must be there
        return self.pick(" ", " ", "  ", "\t")

    def opt(self) -> str:  # whitespace that may be there
        return self.pick("", "", " ", "  ")

    def comma(self) -> str:  # inside parentheses newlines and comments are free
        return "," + self.pick(" ", "", " ", "\n    ", f"  {self.pick(*COMMENTS)}\n  ")

    def sep(self) -> str:  # between statements
        return self.pick("\n", "\n", ";", " ; ", "\n\n", "\n\n\n", "\n  ",
                         f"  {self.pick(*COMMENTS)}\n", f"\n{self.opt()}{self.pick(*COMMENTS)}\n",
                         f"\n\n{self.pick(*COMMENTS)}\n\n")

    def body(self, statements: list[str]) -> str:
        inner = self.sep().join(statements)
        lead = self.pick("", "\n", " ", f"  {self.pick(*COMMENTS)}\n")
        tail = self.pick("", "\n", " ", f"\n{self.pick(*COMMENTS)}\n")
        return "{" + lead + inner + tail + "}"

    # -- expressions (positive integers by construction) ------------------------------
    def width(self, names: list[str], depth: int = 0) -> str:
        kinds = ["int", "name"] + (["add", "mul", "max", "min", "div", "paren", "neg"] if depth < 2 else [])
        kind = self.pick(*kinds)
        sub = lambda: self.width(names, depth + 1)  # noqa: E731
        o = self.opt
        if kind == "name" and names:
            return self.pick(*names)
        if kind in ("int", "name"):
            return str(self.draw(st.integers(1, 8)))
        if kind == "add":
            return f"{sub()}{o()}+{o()}{sub()}"
        if kind == "mul":
            return f"{sub()}{o()}*{o()}{self.pick('1', '2')}"
        if kind == "max":
            return f"max({sub()},{o()}{self.pick('1', '2')})"
        if kind == "min":
            return f"min({sub()},{o()}{sub()})"
        if kind == "div":
            return f"max({sub()}{o()}//{o()}{self.pick('1', '2', '3')}, 1)"
        if kind == "paren":
            return f"({o()}{sub()}{o()})"
        return f"(- -({sub()}))"  # neg: a double negation stays positive

    def condition(self, names: list[str], flags: list[str], depth: int = 0) -> str:
        kinds = ["cmp", "lit"] + (["not", "and", "or"] if depth < 2 else []) + (["flag"] if flags else [])
        kind = self.pick(*kinds)
        sub = lambda: self.condition(names, flags, depth + 1)  # noqa: E731
        if kind == "cmp":
            return f"{self.width(names, 1)}{self.opt()}{self.pick('>', '>=', '==', '!=', '<')}{self.opt()}{self.pick('2', '4')}"
        if kind == "lit":
            return self.pick("true", "false")
        if kind == "flag":
            return self.pick(*flags)
        if kind == "not":
            return self.pick(f"not ({sub()})", f"not {sub()}")
        return f"({sub()}){self.gap()}{kind}{self.gap()}{sub()}"

    # -- statements ------------------------------------------------------------------
    def kernel(self) -> str:
        return self.pick("3x3", "1x1", "3 x 3", "(3) x 3", "1 x (1)")

    def conv(self, names: list[str], out: str | None = None, stride: str | None = None) -> str:
        out = out or self.width(names)
        options = [f"stride={stride}"] if stride else []
        if self.pick(True, False):
            options.append(self.pick("bias=false", "dilation=1", "groups=1"))
        alias = f"{self.gap()}as{self.gap()}{self.fresh('c')}" if self.pick(True, False, False) else ""
        if self.pick(True, False):  # call form
            args = [self.kernel(), out, *options]
            return "conv(" + self.opt() + self.comma().join(args) + self.opt() + ")" + alias
        out = out if self.pick(True, False) else f"({out})"
        return self.gap().join(["conv", self.kernel(), out, *options]) + alias

    def simple(self) -> str:
        return self.pick("bn", "relu", "relu()", "bn eps=1e-5", "bn(momentum=0.10)", "leaky_relu 0.2",
                         "silu", "dropout 0.1", "dropout(1e-1)", "maxpool 3x3 stride=1 padding=1",
                         "avgpool(3 x 3, stride=1, padding=1)", "tanh")

    def layers(self, names: list[str], flags: list[str], count: int, ifs: bool = True) -> list[str]:
        out = []
        for _ in range(count):
            kind = self.pick("conv", "simple", "if" if ifs else "simple")
            if kind == "conv":
                out.append(self.conv(names))
            elif kind == "simple":
                out.append(self.simple())
            else:
                out.append(self.if_stmt(names, flags))
        return out

    def if_stmt(self, names: list[str], flags: list[str]) -> str:
        text = f"if{self.gap()}{self.condition(names, flags)}{self.opt()}" + \
            self.body(self.layers(names, flags, self.draw(st.integers(0, 2)), ifs=False))
        for _ in range(self.draw(st.integers(0, 2))):
            text += f"{self.opt()}else{self.gap()}if{self.gap()}{self.condition(names, flags)}{self.opt()}" + \
                self.body(self.layers(names, flags, 1, ifs=False))
        if self.pick(True, False):
            text += f"{self.opt()}else{self.opt()}" + self.body(self.layers(names, flags, 1, ifs=False))
        return text

    def residual_block(self) -> tuple[str, str]:
        name = self.fresh("rb")
        names, flags = ["out"], ["act"]
        statements = [self.conv(names, "out", "stride"), "bn",
                      self.if_stmt(names, flags), self.conv(names, "out"), "bn", "add", "relu"]
        params = self.comma().join(["out", f"stride{self.opt()}={self.opt()}1",
                                    f"act{self.opt()}={self.opt()}{self.pick('true', 'false')}"])
        return name, f"block{self.gap()}{name}({params}){self.opt()}" + self.body(statements)

    def plain_block(self) -> tuple[str, str]:
        name = self.fresh("pb")
        statements = [self.conv(["out"], "out"), *self.layers(["out"], [], self.draw(st.integers(0, 2)), ifs=False)]
        return name, f"block{self.gap()}{name}(out){self.opt()}" + self.body(statements)

    def stage(self, blocks: list[str], names: list[str], flags: list[str]) -> str:
        block = self.pick(*blocks, "basic", "preact_basic", "bottleneck", "wide_basic")
        args = [self.width(names)]
        if block.startswith("rb") and flags and self.pick(True, False):
            args.append(f"act={self.condition(names, flags)}")
        if block == "wide_basic" and self.pick(True, False):
            args.append("drop=0.25")
        repeats = self.pick("x1", "x2", f"x{self.gap()}{self.pick(*names)}" if names else "x1",
                            f"x{self.gap()}min({self.width(names)}, 2)")
        words = ["stage"]
        if self.pick(True, False):
            words.append(self.fresh("s"))
        words += [repeats, f"{block}({self.comma().join(args)})"]
        if self.pick(True, False):
            words.append(f"stride={self.pick('1', '2', '(2)')}")
        if self.pick(True, False):
            words.append(f"shortcut={self.pick(*POLICIES)}")
        return self.gap().join(words)

    def network(self, blocks: list[str], plain: list[str]) -> tuple[str, str, list[str]]:
        name = self.fresh("net")
        params = {f"p{i}": str(self.draw(st.integers(1, 4))) for i in range(self.draw(st.integers(0, 3)))}
        flags = ["flag"] if self.pick(True, False) else []
        header = [f"{p}{self.opt()}={self.opt()}{v}" for p, v in params.items()]
        header += [f"flag{self.opt()}={self.opt()}{self.pick('true', 'false')}" for _ in flags]
        names = list(params)
        statements = []
        if names and self.pick(True, False):
            message = self.pick('"positive"', '"p \\"quoted\\""')
            statements.append(f"require {self.pick(*names)} >= 1, {message}")
        for _ in range(self.draw(st.integers(0, 2))):
            let = self.fresh("l")
            statements.append(f"let{self.gap()}{let}{self.opt()}={self.opt()}{self.width(names)}")
            names.append(let)
        statements.append(self.pick("input 3x16x16", "input 3 x 16 x 16", "input 3 x (8 + 8) x 16"))
        if self.pick(True, False):
            statements.append(f"stem{self.opt()}" + self.body(self.layers(names, flags, self.draw(st.integers(1, 3)))))
        statements += self.layers(names, flags, self.draw(st.integers(0, 2)))
        if plain and self.pick(True, False):
            width = self.width(names)
            statements.append(self.pick(f"{plain[0]}({width})", f"{plain[0]}{self.gap()}({width})"))
        for _ in range(self.draw(st.integers(1, 2))):
            statements.append(self.stage(blocks, names, flags))
        if self.pick(True, False):
            statements.append(f"head{self.opt()}" + self.body(["avgpool global", "flatten", f"fc {self.width(names, 1)}"]))
        params_text = f"({self.comma().join(header)})" if header else self.pick("", "()")
        text = f"network{self.gap()}{name}{params_text}{self.opt()}" + self.body(statements)
        return name, text, list(params)


@st.composite
def specs(draw) -> str:
    s = _Spec(draw)
    items, blocks, plain = [], [], []
    for _ in range(draw(st.integers(0, 2))):
        name, text = s.residual_block()
        blocks.append(name)
        items.append(text)
    if s.pick(True, False):
        name, text = s.plain_block()
        plain.append(name)
        items.append(text)
    name, text, params = s.network(blocks, plain)
    items.append(text)
    if params and s.pick(True, False):
        items.append(f"network {s.fresh('alias')} = {name}({params[0]}{s.opt()}={s.opt()}2)")
    lead = s.pick("", "\n", f"{s.pick(*COMMENTS)}\n", f"{s.pick(*COMMENTS)}\n\n")
    tail = s.pick("", "\n", "\n\n", f"\n{s.pick(*COMMENTS)}", f"  {s.pick(*COMMENTS)}\n")
    return lead + s.sep().join(items) + tail


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_formatting_generated_specs_keeps_their_meaning(text):
    formatted = format_source(text)
    assert format_source(formatted) == formatted
    assert ast_without_spans(formatted) == ast_without_spans(text)
    assert comment_texts(formatted) == comment_texts(text)
    assert irs_without_spans(formatted) == irs_without_spans(text)

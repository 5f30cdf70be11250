"""Cap large amounts so that a few huge orders do not dominate."""


def transform(inputs, args):
    return inputs["column"].clip(upper=args["limit"])

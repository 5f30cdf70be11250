"""Cap large amounts so that a few huge orders do not dominate."""


def transform(inputs, args):
    return inputs["column"].clip(lower=0, upper=args["limit"])

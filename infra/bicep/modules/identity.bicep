// The user-assigned identity the regional Function App runs as. It is separate from the app so that
// role assignments exist before the app starts, and so that it survives an app being recreated.
@allowed([
  'northeurope'
  'westeurope'
])
param location string
param name string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
